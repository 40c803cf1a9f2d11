"""The race engineer: one car's tyres, fuel, energy, the cars around it, and its pit rejoin."""
