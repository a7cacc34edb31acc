console.log(`node24 action: execPath ${process.execPath.startsWith('/__e/') ? 'lent' : process.execPath}`);
