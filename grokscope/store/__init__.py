"""The run store (Zarr v3): its layout, the writer, the readers, finding stores and resume state."""
