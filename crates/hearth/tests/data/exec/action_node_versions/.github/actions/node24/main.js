console.log('node24 action ran with node ' + (typeof process.versions.node === 'string' ? 'found' : 'missing'));
