DROP TABLE dir_services;
