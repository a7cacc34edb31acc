echo "args: $# [$1] [$2]"
echo "who=$INPUT_WHO shout=$INPUT_SHOUT env=$ACTION_ENV step=$STEP_VAR"
echo "in $(pwd), home $HOME, workspace $GITHUB_WORKSPACE"
echo "output file $GITHUB_OUTPUT, event $GITHUB_EVENT_PATH"
echo "repository file: $(cat data.txt)"
case "$(head -c 1 "$GITHUB_EVENT_PATH")" in "{") echo "event is json: yes" ;; *) echo "event is json: no" ;; esac
echo "greeting=hello $1" >> "$GITHUB_OUTPUT"
echo "FROM_ACTION=set" >> "$GITHUB_ENV"
echo made > made-by-action.txt
