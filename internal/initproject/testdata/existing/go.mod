module example.com/existing
