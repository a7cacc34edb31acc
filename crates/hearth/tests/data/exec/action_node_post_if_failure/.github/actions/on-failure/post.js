console.log(`failure post ran in ${process.env.GITHUB_JOB}`);
