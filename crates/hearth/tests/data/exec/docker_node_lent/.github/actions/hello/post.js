console.log(`post: said to ${process.env.STATE_said}`);
