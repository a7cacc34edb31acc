#!/usr/bin/env bash
echo "script next to action.yml ran from $(basename "$(dirname "$0")")"
