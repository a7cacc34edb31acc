const fs = require('fs');
const out = process.env.GITHUB_OUTPUT;
fs.appendFileSync(out, 'answer=42\n');
fs.appendFileSync(out, 'lines<<END_OF_LINES\nalpha\nbeta\nEND_OF_LINES\n');
fs.appendFileSync(process.env.GITHUB_ENV, 'FROM_JS=env from js\n');
