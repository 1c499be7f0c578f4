"""Dense downstream tasks with few labels (notebook 08): masks and label budgets, metrics, heads,
fitting, Siamese temporal consistency (paper 004) and the budget sweeps over feature sources."""
