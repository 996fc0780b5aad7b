"""The run configuration: the frozen :class:`~grokscope.config.run.RunConfig`, its presets and resolution."""
