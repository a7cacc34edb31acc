const fs = require('fs');
const secret = ['generated', 'js', String(6 * 7 * 100 + 23)].join('-');
console.log(`::add-mask::${secret}`);
console.log(`the value is ${secret}`);
console.log('::warning file=src/app.js,line=3::careful from js');
console.log('::notice::note from js');
fs.appendFileSync(process.env.GITHUB_OUTPUT, `value=${secret}\n`);
