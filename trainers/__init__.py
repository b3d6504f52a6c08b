"""Fine-tuning backends behind one protocol (issue: training); nothing here yet."""
