from fractalscape.cli import main

main()
