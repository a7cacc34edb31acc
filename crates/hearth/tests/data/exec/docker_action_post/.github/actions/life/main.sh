#!/bin/sh
echo "main ran with [$1] input=$INPUT_VALUE"
echo "kept=kept" >> "$GITHUB_STATE"
