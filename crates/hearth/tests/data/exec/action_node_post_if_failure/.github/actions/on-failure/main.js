console.log(`main in ${process.env.GITHUB_JOB}`);
