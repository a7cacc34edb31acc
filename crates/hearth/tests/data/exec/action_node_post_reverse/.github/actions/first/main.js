console.log('main first');
