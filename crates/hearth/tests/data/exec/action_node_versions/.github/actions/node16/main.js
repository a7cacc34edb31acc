console.log('node16 action ran with node ' + (typeof process.versions.node === 'string' ? 'found' : 'missing'));
