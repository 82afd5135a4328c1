#!/bin/bash
# Entrypoint of docker-compose.yml's gremlin service, in the official tinkerpop/gremlin-server image: writes the
# credentials graph from C360_GREMLIN_USERNAME / C360_GREMLIN_PASSWORD and compiles the authorizer (into c360-run/,
# a tmpfs), then runs the server with the given config on the image's own launcher, the authorizer on its classpath.
# `c360 gremlin start` does the same steps locally (c360.graph.gremlin_server).
set -euo pipefail
cd /opt/gremlin-server
java -cp "lib/*" groovy.ui.GroovyMain scripts/c360-prepare.groovy c360-run scripts/BytecodeOnlyAuthorizer.groovy
unset C360_GREMLIN_PASSWORD
export CLASSPATH=/opt/gremlin-server/c360-run/classes
exec bin/gremlin-server.sh "${1:-conf/gremlin-server-c360.yaml}"
