"""Analysis of run stores: pure measures (numpy/scipy on arrays) and the runners that read stores."""
