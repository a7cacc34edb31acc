#!/bin/sh
echo "pre ran"
