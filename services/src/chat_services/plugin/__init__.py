"""PluginService: plugins found through entry points, run in worker processes, with an event stream."""
