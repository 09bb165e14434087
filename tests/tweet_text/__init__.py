"""Tweet length: chirpbase's counters checked against X's reference counter and its data."""
