module example.com/legacy
