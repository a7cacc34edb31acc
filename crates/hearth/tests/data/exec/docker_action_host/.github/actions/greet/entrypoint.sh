echo "action: hello $1 in $(pwd), $(cat data.txt), $(cat step.txt)"
echo "greeting=hello $1" >> "$GITHUB_OUTPUT"
echo "made on the host's workspace" > made.txt
