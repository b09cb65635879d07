// Keeps static libraries whose folders are still empty linkable.
