"""The board file: the option table, durations, the validating loader, families, windows, input patterns."""
