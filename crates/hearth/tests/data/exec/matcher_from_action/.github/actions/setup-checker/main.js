const path = require('path');
console.log(`::add-matcher::${path.join(__dirname, 'checker.json')}`);
