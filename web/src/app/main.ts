console.log("ehrgate");
