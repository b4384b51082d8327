"""Credit-risk model: training, the registry adapter and the promotions engine (`mlops`)."""
