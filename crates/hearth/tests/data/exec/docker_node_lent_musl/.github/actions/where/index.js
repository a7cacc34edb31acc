const fs = require('fs');
console.log(`musl image: ${fs.existsSync('/lib/ld-musl-x86_64.so.1')}, glibc: ${fs.existsSync('/lib/x86_64-linux-gnu/libc.so.6')}`);
console.log(`ran with a lent node: ${process.execPath.startsWith('/__e/node')}`);
