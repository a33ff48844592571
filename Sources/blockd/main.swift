print("blockd")
