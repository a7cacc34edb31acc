console.log(`post sees STATE_token=${process.env.STATE_token}`);
console.log(`post sees STATE_multi=${JSON.stringify(process.env.STATE_multi)}`);
console.log(`post sees INPUT_TAG=${process.env.INPUT_TAG}`);
