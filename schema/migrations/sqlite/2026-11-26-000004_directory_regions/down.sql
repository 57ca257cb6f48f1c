DROP TABLE dir_municipalities;
DROP TABLE dir_seutukunnat;
