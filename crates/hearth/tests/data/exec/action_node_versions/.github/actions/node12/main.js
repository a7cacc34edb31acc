console.log('node12 action ran with node ' + (typeof process.versions.node === 'string' ? 'found' : 'missing'));
