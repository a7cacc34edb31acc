console.log('::remove-matcher owner=checker::');
console.log('CHECK warning post.txt:1 after removal');
