"""Features and labels: indicators, their configuration, the feature matrix, labels."""
