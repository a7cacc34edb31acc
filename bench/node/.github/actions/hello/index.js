require('fs').appendFileSync(process.env.GITHUB_OUTPUT, 'said=hello\n');
