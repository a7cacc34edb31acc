console.log(`js post saw ${process.env.STATE_seen}`);
