console.log('guarded pre ran');
