-- A commune's arrondissement (e.g. "771"), from the directory: routing rules can target it.
ALTER TABLE collectivity ADD COLUMN arrondissement text;
