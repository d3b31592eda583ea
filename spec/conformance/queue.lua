return function(b) end
