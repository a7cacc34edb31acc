#!/bin/sh
echo "post ran with [$1] input=$INPUT_VALUE after: $(cat last.txt), state=$STATE_kept"
