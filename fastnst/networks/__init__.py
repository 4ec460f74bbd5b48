"""Neural networks: the frozen VGG loss network and the image transformation network."""
