const fs = require('fs');
fs.writeFileSync(process.env.GITHUB_WORKSPACE + '/pre-ran.txt', 'yes');
console.log('pre ran');
