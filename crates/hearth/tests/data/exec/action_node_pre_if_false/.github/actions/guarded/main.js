console.log('guarded main ran');
