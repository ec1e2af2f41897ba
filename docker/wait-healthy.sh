#!/usr/bin/env bash
# Waits (up to 60 s) until every container of compose project $1 reports
# healthy — docker-compose 1.29 has no `up --wait`. Prints the laggards on
# a timeout.
set -euo pipefail
project=$1
deadline=$((SECONDS + 60))
while :; do
  ids=$(docker ps -q --filter "label=com.docker.compose.project=$project")
  [ -n "$ids" ] || { echo "no containers in project $project" >&2; exit 1; }
  waiting=$(docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}' $ids | grep -v ' healthy$' || true)
  [ -z "$waiting" ] && exit 0
  if [ $SECONDS -ge $deadline ]; then echo "not healthy after 60 s:" >&2; echo "$waiting" >&2; exit 1; fi
  sleep 1
done
