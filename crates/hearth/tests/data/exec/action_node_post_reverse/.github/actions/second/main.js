console.log('main second');
