echo "hello $1 in $(pwd), home $HOME"
echo "repository file: $(cat data.txt)"
echo "greeting=hello $1" >> "$GITHUB_OUTPUT"
echo "FROM_ACTION=set" >> "$GITHUB_ENV"
echo made > made-by-action.txt
