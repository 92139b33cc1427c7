module example.com/sk
