const fs = require('fs');
console.log(`main sees STATE_token=[${process.env.STATE_token || ''}]`);
fs.appendFileSync(process.env.GITHUB_STATE, `token=tok-${process.env.INPUT_TAG}\n`);
fs.appendFileSync(process.env.GITHUB_STATE, 'multi<<EOS\nline one\nline two\nEOS\n');
