// Binds the traversal source `g` that gremlinpython clients use (DriverRemoteConnection(..., "g")).
def globals = [:]
globals << [hook : [
  onStartUp: { ctx -> ctx.logger.info("c360: graph ready, traversal source g bound") },
  onShutDown: { ctx -> ctx.logger.info("c360: shutting down") }
] as LifeCycleHook]
globals << [g : traversal().withEmbedded(graph)]
