"""Pure measures: numpy and scipy on arrays and tables; nothing here reads a store."""
