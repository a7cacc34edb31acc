console.log(`node18 action: execPath ${process.execPath.startsWith('/__e/') ? 'lent' : process.execPath}`);
